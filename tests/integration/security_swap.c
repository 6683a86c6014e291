/* security_swap: the attacker of test_security_paths.sh. Swaps two names in
 * a directory it owns (renameat2 RENAME_EXCHANGE, atomic) as fast as it can,
 * until the file STOP exists; prints the number of swaps.
 *   security_swap A B STOP */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: security_swap A B STOP\n");
        return 2;
    }
    unsigned long swaps = 0;
    for (;;) {
        for (int i = 0; i < 1000; i++)
            if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) == 0)
                swaps++;
        if (access(argv[3], F_OK) == 0)
            break;
    }
    /* Leave A as it was at the start: an even number of swaps. */
    if (swaps % 2 && renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) == 0)
        swaps++;
    printf("%lu\n", swaps);
    return 0;
}
