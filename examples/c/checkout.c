/*
 * A C application that takes a seat while it works and gives it back.
 *
 *   cc examples/c/checkout.c -I hal-client-c/include -L target/release -lhal_client \
 *      -Wl,-rpath,$PWD/target/release -o checkout
 *   HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1' \
 *   HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem ./checkout HAL 30
 *
 * Arguments: the feature (default HAL), how many seconds to work (default 10), and how
 * many seconds to wait in the queue for a seat when every seat is in use (default 0:
 * denied at once).
 * Exit codes: 0 done; 1 failed otherwise; 2 denied; 3 no server reached or no answer;
 * 4 the seat was lost while working.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hal.h"

static int fail(const char *what, hal_status status)
{
    fprintf(stderr, "%s: %s (%s)\n", what, hal_status_name(status), hal_last_error_message());
    if (status == HAL_UNREACHABLE || status == HAL_NO_ANSWER)
        return 3;
    if (status < HAL_UNREACHABLE)
        return 2; /* a denial: every seat in use, no such feature, ... */
    return 1;
}

int main(int argc, char **argv)
{
    const char *feature = argc > 1 ? argv[1] : "HAL";
    int seconds = argc > 2 ? atoi(argv[2]) : 10;
    int wait = argc > 3 ? atoi(argv[3]) : 0;

    /* NULL, NULL: the license path and the triad's CA from HAL_LICENSE_PATH and HAL_TRIAD_CA. */
    hal_client *client = NULL;
    hal_status status = hal_client_new(NULL, NULL, &client);
    if (status != HAL_OK)
        return fail("error", status);

    hal_seat *seat = NULL;
    if (wait > 0)
        status = hal_checkout_wait(client, feature, (uint32_t)wait * 1000, &seat);
    else
        status = hal_checkout(client, feature, &seat);
    if (status != HAL_OK) {
        int code = fail("denied", status);
        hal_client_free(client);
        return code;
    }
    printf("granted: %s seat h%llu by server #%u\n", feature,
           (unsigned long long)hal_seat_handle(seat), (unsigned)hal_seat_server(seat));
    fflush(stdout);

    /* The work: the seat is heartbeated in the background; events say what happens. */
    for (int tenths = 0; tenths < seconds * 10; tenths++) {
        hal_event event;
        status = hal_next_event(client, 100, &event);
        if (status != HAL_OK)
            break;
        if (event.kind == HAL_EVENT_FAILED_OVER) {
            printf("failed over: server #%u is active (was #%u)\n", (unsigned)event.to,
                   (unsigned)event.from);
            fflush(stdout);
        } else if (event.kind == HAL_EVENT_LOST && event.handle == hal_seat_handle(seat)) {
            fprintf(stderr, "lost: seat h%llu; stopping\n", (unsigned long long)event.handle);
            hal_seat_free(seat);
            hal_client_free(client);
            return 4;
        }
    }

    status = hal_checkin(seat);
    if (status != HAL_OK) {
        int code = fail("checkin", status);
        hal_client_free(client);
        return code;
    }
    printf("checked in\n");
    hal_client_free(client);
    return 0;
}
