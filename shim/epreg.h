/* epreg.h: the app's epoll registrations, remembered (epreg.c), so that a
 * connect retry (nbconn.c) can take a socket out of every epoll set it is
 * in for a backoff, and put it back as the app registered it, with the
 * changes the app made meanwhile. Lock-free; below nbconn.c, calls it not. */
#ifndef RESHIM_EPREG_H
#define RESHIM_EPREG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct epoll_event;
/* Connect retries in flight (nbconn.c's slots in use; 0 keeps every wait
 * and the short path of an epoll MOD on their fast path). */
extern atomic_int reshim_nb_active;

/* The app's epoll_ctl, remembered: returns what epoll_ctl returns.
 * held(fd): fd is held out of its sets now (waiting out a backoff), so an
 * ADD or MOD of it is kept here and applied when it goes back. */
int epreg_ctl(int epfd, int op, int fd, struct epoll_event *ev, bool (*held)(int fd));
/* Takes fd out of its epoll sets for a backoff (epoll reports EPOLLHUP even
 * with no events asked for, so only removal silences a closed socket), or
 * puts it back as the app registered it. */
void epreg_arm(int fd, bool on);
/* fd (every fd of first..last) was closed or replaced: its records go; an
 * epoll instance's number closing drops every record on it. */
void epreg_clear(int fd);
void epreg_clear_range(unsigned first, unsigned last);
/* Any registration was ever remembered. */
bool epreg_any(void);
/* fd is registered on epfd with this data, in the set, and its registration
 * could have produced these events. */
bool epreg_match(int fd, int epfd, uint64_t data, uint32_t events);

#endif
