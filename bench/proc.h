/* Server process and machine figures for the load generators of `make bench`
 * (bench/loadgen.c, bench/coaploadgen.c), read from /proc at the edges of the
 * measured window. Several pids (nginx master and workers) are added up. */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

/* utime+stime in seconds of all pids, from /proc/PID/stat fields 14 and 15. */
static inline double proc_cpu_seconds(const pid_t *pids, int npids)
{
    double total = 0;
    long tck = sysconf(_SC_CLK_TCK);

    for (int i = 0; i < npids; i++) {
        char path[64], line[1024];
        unsigned long ut = 0, st = 0;
        FILE *f;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
        fclose(f);
        /* after the command name: state, then fields 4..13, then utime stime */
        if (p != NULL &&
            sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            total += (double)(ut + st) / (double)tck;
    }
    return total;
}

/* A "Name:  N kB" line of /proc/PID/status, added up over all pids. */
static inline long proc_status_kb(const pid_t *pids, int npids, const char *name)
{
    long total = 0;
    size_t nlen = strlen(name);

    for (int i = 0; i < npids; i++) {
        char path[64], line[256];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
                total += strtol(line + nlen + 1, NULL, 10);
                break;
            }
        }
        fclose(f);
    }
    return total;
}

/* Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
static inline double machine_busy_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n = 0;

    if (f != NULL) {
        n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
        fclose(f);
    }
    if (n != 8)
        return 0;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of this process, all threads. */
static inline double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#endif
