/*
 * tcp_wire.c - fuzz target: what a TCP data connection receives before any payload
 * (transport/tcp_conn.c, tcp_data.c). First byte 0: a handshake (nonce, hello, MAC) from a
 * stranger, which only the job key can make pass, and which, MAC'd with the key, gives back
 * its fields; else: a frame header on socket (byte % 4) of a 4-socket pair, which is either
 * refused or announces a part that lies within the message.
 */
#include <endian.h>
#include <string.h>

#include "transport/tcp_internal.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t key[WEFT_TRANSPORT_KEY_BYTES] = "weft fuzz transport key 32 bytes";

static void handshake(const uint8_t *p, size_t n)
{
    uint8_t hs[WEFT_TCP_HS_BYTES];
    uint32_t f[WEFT_TCP_HELLO_FIELDS], got[WEFT_TCP_HELLO_FIELDS];

    if (n < sizeof(hs))
        return;
    memcpy(hs, p, sizeof(hs));
    if (weft_tcp_hello_verify(key, hs, f)) {
        /* Only bytes MAC'd with the key pass: re-MAC'ing the fields changes nothing. */
        uint8_t again[WEFT_TCP_HS_BYTES];
        memcpy(again, hs, sizeof(again));
        weft_tcp_hello_encode(key, again, f);
        FUZZ_ASSERT(memcmp(again, hs, WEFT_TCP_HS_PROOF) == 0);
    }
    (void)weft_tcp_proof_verify(key, hs);
    /* The same fields, MAC'd with the key, pass and come back unchanged. */
    for (int i = 0; i < WEFT_TCP_HELLO_FIELDS; i++)
        memcpy(&f[i], p + WEFT_TCP_HS_HELLO + 4 * i, 4);
    weft_tcp_hello_encode(key, hs, f);
    FUZZ_ASSERT(weft_tcp_hello_verify(key, hs, got));
    FUZZ_ASSERT(memcmp(got, f, sizeof(f)) == 0);
    weft_tcp_proof_encode(key, hs);
    FUZZ_ASSERT(weft_tcp_proof_verify(key, hs));
}

static void frame(int index, const uint8_t *p, size_t n)
{
    static struct weft_tp tp; /* large (its discard buffer): not on the stack */
    struct weft_tcp_frame f;

    if (n < sizeof(f))
        return;
    memcpy(&f, p, sizeof(f));
    tp.nsocks = 4;
    tp.nranks = 2;
    if (weft_tcp_frame_fault(&tp, &f, index) != NULL)
        return;
    const uint64_t total = le64toh(f.total), plen = le64toh(f.part_len);
    FUZZ_ASSERT(plen <= total);
    FUZZ_ASSERT(le32toh(f.part) == (uint32_t)index);
    FUZZ_ASSERT(index < (int)weft_tcp_nparts(&tp, (size_t)total));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] == 0)
        handshake(data + 1, size - 1);
    else
        frame(data[0] % 4, data + 1, size - 1);
    return 0;
}
