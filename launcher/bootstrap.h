/*
 * bootstrap.h - authenticated TCP rendezvous. A unique id carries the root's address and a
 * random 32-byte job secret. Every rank connects to the root and proves the secret by
 * challenge-response (HMAC-SHA-256, libsodium), the root proves it back, the root checks that
 * the ranks agree (nranks, distinct ranks) and hands everyone the table of ranks; the ranks
 * then form a ring (each link authenticated the same way) that carries out-of-band
 * allgathers and barriers. Every wait is bounded by WEFT_TIMEOUT.
 */
#ifndef WEFT_LAUNCHER_BOOTSTRAP_H
#define WEFT_LAUNCHER_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "weft.h"

#define WEFT_BOOT_SECRET_BYTES 32
#define WEFT_BOOT_HOST_MAX 64

/* The decoded unique id. */
struct weft_boot_id {
    struct sockaddr_storage root; /* where the root service listens */
    socklen_t root_len;
    uint8_t secret[WEFT_BOOT_SECRET_BYTES];
};

weft_result_t weft_boot_id_encode(const struct weft_boot_id *in, weft_unique_id_t *out);
/* Fails with WEFT_ERR_INVALID_ARG on a malformed id (bad magic or version). */
weft_result_t weft_boot_id_decode(const weft_unique_id_t *in, struct weft_boot_id *out);

/* Creates a fresh secret, starts the root service in a thread of this process, listening on
 * `bind_host` (NULL: the interface weft_netif_pick chooses; "127.0.0.1": local only), and
 * fills `id`. The thread serves one job: it exits once every rank has its table, or at
 * WEFT_TIMEOUT (telling the ranks that came which ranks never did). */
weft_result_t weft_boot_root_start(const char *bind_host, weft_unique_id_t *id);
/* As weft_boot_root_start, at a fixed address: `bind` is "host:port" (host may be "0.0.0.0" or
 * "[::]" for every interface) and `secret` the job secret (NULL: a fresh random one). Used by
 * launcher modes where every rank computes the id itself (Slurm without PMI, torchrun). */
weft_result_t weft_boot_root_start_at(const char *bind, const uint8_t *secret,
                                      weft_unique_id_t *id);

/* The job tag (16 hex digits and a NUL; len >= 17) for a caller holding only the id. */
weft_result_t weft_boot_id_job_tag(const weft_unique_id_t *id, char *out, size_t len);

/* Waits up to max_s seconds for the root threads of this process to finish: called by a
 * rank that failed to join, so its root can still tell the other ranks why. */
void weft_boot_root_drain(double max_s);

/* The id from WEFT_ROOT (host:port) and WEFT_SECRET (64 hex digits). */
weft_result_t weft_boot_id_from_env(weft_unique_id_t *id);
/* The strings weft-run puts in WEFT_ROOT and WEFT_SECRET. */
weft_result_t weft_boot_id_to_env(const weft_unique_id_t *id, char *root, size_t root_len,
                                  char *secret_hex, size_t secret_len);

struct weft_boot;

/* Joins the rendezvous as `rank` of `nranks`; returns once the ring is up. */
weft_result_t weft_boot_init(const weft_unique_id_t *id, int rank, int nranks,
                             struct weft_boot **boot);
void weft_boot_destroy(struct weft_boot *boot);

/* Out-of-band collectives over the ring (slow path: set-up only). */
weft_result_t weft_boot_allgather(struct weft_boot *boot, const void *mine, void *all, size_t len);
weft_result_t weft_boot_barrier(struct weft_boot *boot);

int weft_boot_rank(const struct weft_boot *boot);
int weft_boot_nranks(const struct weft_boot *boot);
/* Host name and pid of `rank`, as it announced them at rendezvous. */
const char *weft_boot_hostname(const struct weft_boot *boot, int rank);
int weft_boot_pid(const struct weft_boot *boot, int rank);
/* A key for data connections, derived from the secret (generic hash with a context). */
void weft_boot_transport_key(const struct weft_boot *boot, uint8_t key[32]);
/* A short tag unique to this job (hex of a hash of the secret): safe in segment names. */
const char *weft_boot_job_tag(const struct weft_boot *boot);

#endif /* WEFT_LAUNCHER_BOOTSTRAP_H */
