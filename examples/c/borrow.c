/*
 * A C application that borrows a seat to work offline, checks its borrow offline, and
 * returns it early.
 *
 *   cc examples/c/borrow.c -I hal-client-c/include -L target/release -lhal_client \
 *      -Wl,-rpath,$PWD/target/release -o borrow
 *   export HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1'
 *   export HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem
 *   ./borrow take HAL 8      # borrow a seat of HAL for 8 hours (needs server #1)
 *   ./borrow check HAL       # offline: is there a current, signed, unedited borrow?
 *   ./borrow return 17       # give seat h17 back early
 *
 * Exit codes: 0 done (check: borrowed); 1 failed otherwise; 2 denied; 3 no server reached
 * or no answer; 5 check: not borrowed; 6 check: a record of the feature does not prove
 * itself (edited, unsigned, another machine's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hal.h"

static int fail(const char *what, hal_status status)
{
    fprintf(stderr, "%s: %s (%s)\n", what, hal_status_name(status), hal_last_error_message());
    if (status == HAL_UNREACHABLE || status == HAL_NO_ANSWER)
        return 3;
    if (status == HAL_NOT_BORROWED)
        return 5;
    if (status == HAL_RECORD)
        return 6;
    if (status < HAL_UNREACHABLE)
        return 2; /* a denial: borrowing needs server #1, not allowed this long, ... */
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: borrow take FEATURE HOURS | check FEATURE | return HANDLE\n");
        return 1;
    }
    hal_client *client = NULL;
    hal_status status = hal_client_new(NULL, NULL, &client);
    if (status != HAL_OK)
        return fail("error", status);

    int code = 0;
    hal_borrowed borrowed;
    if (strcmp(argv[1], "take") == 0 && argc > 3) {
        status = hal_borrow(client, argv[2], (uint32_t)atoi(argv[3]), &borrowed);
        if (status == HAL_OK)
            printf("borrowed: %s seat h%llu from server #%u until %llu ms\n", argv[2],
                   (unsigned long long)borrowed.handle, (unsigned)borrowed.server,
                   (unsigned long long)borrowed.end_ms);
        else
            code = fail("denied", status);
    } else if (strcmp(argv[1], "check") == 0) {
        status = hal_find_borrow(client, argv[2], &borrowed);
        if (status == HAL_OK)
            printf("borrowed: %s seat h%llu, valid until %llu ms (signed by server #%u)\n",
                   argv[2], (unsigned long long)borrowed.handle,
                   (unsigned long long)borrowed.end_ms, (unsigned)borrowed.server);
        else
            code = fail("not borrowed", status);
    } else if (strcmp(argv[1], "return") == 0) {
        status = hal_return(client, strtoull(argv[2], NULL, 10));
        if (status == HAL_OK)
            printf("returned: seat h%s\n", argv[2]);
        else
            code = fail("return", status);
    } else {
        fprintf(stderr, "usage: borrow take FEATURE HOURS | check FEATURE | return HANDLE\n");
        code = 1;
    }
    hal_client_free(client);
    return code;
}
