/* cpu_pair: how far apart two CPUs are, as the time one cache line takes to
 * go from one to the other and back (two threads, each pinned, bouncing a
 * counter). On this kind of 2-vCPU VM it moves between about 100 ns and
 * about 500 ns as the host places the vCPUs, and picolog's burst (a producer
 * and a writer thread passing the ring) moves with it; a raw writer (one
 * thread) does not. bench/run.sh prints it with each round.
 *
 *   cpu_pair [--cpus A,B] [--rounds N] [--label NAME]
 */
#define _GNU_SOURCE
#include "bench.h"
#include <pthread.h>
#include <sched.h>

static _Alignas(64) uint64_t ping;
static _Alignas(64) uint64_t pong;
static uint64_t rounds = 1000000;
static int cpu_b = 1;

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *answer(void *arg) {
    (void)arg;
    if (pin(cpu_b) != 0) return (void *)1;
    for (uint64_t i = 1; i <= rounds; i++) {
        while (__atomic_load_n(&ping, __ATOMIC_ACQUIRE) != i) {}
        __atomic_store_n(&pong, i, __ATOMIC_RELEASE);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int cpu_a = 0;
    const char *label = "cpu_pair";
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--cpus"))) { if (sscanf(v, "%d,%d", &cpu_a, &cpu_b) != 2) return 2; }
        else if ((v = bench_opt(argc, argv, &i, "--rounds"))) rounds = strtoull(v, NULL, 10);
        else if ((v = bench_opt(argc, argv, &i, "--label"))) label = v;
        else { fprintf(stderr, "usage: cpu_pair [--cpus A,B] [--rounds N] [--label NAME]\n"); return 2; }
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || rounds == 0) { printf("# cpu_pair: fewer than 2 CPUs\n"); return 0; }
    pthread_t t;
    if (pin(cpu_a) != 0 || pthread_create(&t, NULL, answer, NULL) != 0) { fprintf(stderr, "cpu_pair: cannot place the threads\n"); return 1; }
    uint64_t t0 = bench_mono_ns();
    for (uint64_t i = 1; i <= rounds; i++) {
        __atomic_store_n(&ping, i, __ATOMIC_RELEASE);
        while (__atomic_load_n(&pong, __ATOMIC_ACQUIRE) != i) {}
    }
    uint64_t ns = bench_mono_ns() - t0;
    void *rv = NULL;
    pthread_join(t, &rv);
    if (rv) { fprintf(stderr, "cpu_pair: cannot place the second thread on CPU %d\n", cpu_b); return 1; }
    printf("# cpu_pair: CPUs %d and %d, one cache line's round trip %.0f ns (%llu rounds)\n", cpu_a, cpu_b,
           (double)ns / (double)rounds, (unsigned long long)rounds);
    bench_result("machine", label, "round_trip_ns", (double)ns / (double)rounds, "ns");
    return 0;
}
