// CProcShims: the few Linux process calls Swift's Glibc module does not expose (pidfds, epoll,
// a signal self-pipe).
#ifndef CPROCSHIMS_H
#define CPROCSHIMS_H

#include <sys/types.h>

/// pidfd_open(2): a file descriptor that refers to process `pid`; -1 with errno on failure.
int connectd_pidfd_open(pid_t pid);

/// pidfd_send_signal(2): signal the process `pidfd` refers to (never a recycled pid).
int connectd_pidfd_send_signal(int pidfd, int sig);

/// epoll without the packed epoll_event struct: descriptors and events come back in two arrays.
int connectd_epoll_create(void);
int connectd_epoll_add(int epfd, int fd, unsigned int events);
int connectd_epoll_remove(int epfd, int fd);
int connectd_epoll_wait(int epfd, int *fds, unsigned int *events, int max, int timeout_ms);
int connectd_eventfd(void);

#define CONNECTD_EPOLLIN 0x001u
#define CONNECTD_EPOLLHUP 0x010u

/// F_SETPIPE_SZ: grow a pipe's buffer; returns the new size or -1.
int connectd_set_pipe_size(int fd, int size);

/// The self-pipe trick: installs a handler for each of `signals` that writes the signal's number
/// (one byte) to a pipe, and returns the pipe's read end (non-blocking, close-on-exec), or -1
/// with errno. Lets an event loop wait for a signal without a thread or a dispatch source.
int connectd_signal_pipe(const int *signals, int count);

#endif
