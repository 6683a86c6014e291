/* utf8.h: the one UTF-8 module of reshim, for the library's encoders and the
 * CLI alike (its JSON reader, its tables and its live view). Pure. */
#ifndef RESHIM_UTF8_H
#define RESHIM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_FFFD "\xef\xbf\xbd" /* U+FFFD, what replaces bytes that are not UTF-8 */
#define UTF8_MAX 4               /* bytes of the longest sequence */

/* Length of the well-formed UTF-8 sequence at s (n bytes available): 1-4,
 * or 0 when the bytes there are not one (overlong forms, surrogates, values
 * above U+10FFFF, stray continuation bytes and cut sequences are not). */
size_t utf8_seq(const unsigned char *s, size_t n);
/* Code point cp (at most U+10FFFF) as UTF-8 into out (UTF8_MAX bytes);
 * returns its length. */
size_t utf8_put(uint32_t cp, char *out);

#endif
