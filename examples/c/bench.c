/*
 * Times checkout + checkin through the C API: `bench CYCLES` does 20 cycles to warm up
 * (the first opens the TLS connection), then CYCLES more, and prints
 * `ns_per_cycle N`. The servers come from HAL_LICENSE_PATH and HAL_TRIAD_CA.
 * `hal-client-bench` (crate hal-benches) runs it against the Rust API, alternately.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hal.h"

static int cycle(hal_client *client, const char *feature)
{
    hal_seat *seat = NULL;
    hal_status status = hal_checkout(client, feature, &seat);
    if (status == HAL_OK)
        status = hal_checkin(seat);
    if (status != HAL_OK) {
        fprintf(stderr, "%s: %s\n", hal_status_name(status), hal_last_error_message());
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? atol(argv[1]) : 200;
    const char *feature = argc > 2 ? argv[2] : "bench";
    hal_client *client = NULL;
    if (hal_client_new(NULL, NULL, &client) != HAL_OK) {
        fprintf(stderr, "error: %s\n", hal_last_error_message());
        return 1;
    }
    for (int i = 0; i < 20; i++)
        if (cycle(client, feature) != 0)
            return 1;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < cycles; i++)
        if (cycle(client, feature) != 0)
            return 1;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("ns_per_cycle %.0f\n", ns / (double)cycles);
    hal_client_free(client);
    return 0;
}
