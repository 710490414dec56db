// Parks N HTTP long-polls on one URL and reports, after a trigger, when each got its answer.
// Usage: watchers PORT PATH N TRIGGER_FILE [close|keep-alive]
//   Opens N connections to 127.0.0.1:PORT, sends GET PATH, prints "parked" and then waits until
//   TRIGGER_FILE exists (the benchmark creates it right before it makes the change), then records
//   the monotonic time of the first byte of each answer. Prints p50/p99/max in ms after the trigger.
//   With keep-alive (the default, as a proxy's Go client keeps its connection for the next
//   long-poll) connections stay open after the answer; with close the requests say
//   `Connection: close` and the server closes each connection after answering.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) { fprintf(stderr, "usage: watchers PORT PATH N TRIGGER_FILE [close|keep-alive]\n"); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[3]);
    const char *trigger = argv[4];
    int closing = argc == 6 && strcmp(argv[5], "close") == 0;
    char request[1024];
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", argv[2],
                       closing ? "Connection: close\r\n" : "");
    int ep = epoll_create1(0);
    double *done = calloc(n, sizeof(double));
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); return 1; }
        if (write(fd, request, len) != len) { perror("write"); return 1; }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data = { .u32 = (unsigned)i } };
        ev.data.u64 = ((unsigned long long)fd << 32) | (unsigned)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    printf("parked\n");
    fflush(stdout);
    struct stat st;
    while (stat(trigger, &st) != 0) usleep(1000);
    double start = now_ms();
    int answered = 0, early = 0;
    struct epoll_event events[256];
    while (answered < n) {
        int count = epoll_wait(ep, events, 256, 30000);
        if (count <= 0) { fprintf(stderr, "timed out with %d of %d answered\n", answered, n); return 1; }
        double t = now_ms();
        for (int k = 0; k < count; k++) {
            int fd = (int)(events[k].data.u64 >> 32);
            int i = (int)(events[k].data.u64 & 0xffffffff);
            char buf[4096];
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0 && !(r < 0 && errno == EAGAIN)) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); continue; }
            if (done[i] == 0) {
                done[i] = t - start;
                if (done[i] < 0) early++;
                answered++;
            }
        }
    }
    qsort(done, n, sizeof(double), cmp);
    printf("answered %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", n, done[n / 2], done[(int)(n * 0.99) - 1], done[n - 1]);
    return 0;
}
