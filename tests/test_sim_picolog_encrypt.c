/* The simulated-disk test (test_sim_picolog.c: power cuts, torn and lost
 * writes, injected errors, several incarnations per seed) with every log
 * encrypted (PICOLOG_ENCRYPT): sealed fragments must give the same
 * guarantees. Fewer seeds than the plain run (PLG_SIM_ENC_SEEDS=N for more).
 * usage: test_sim_picolog_encrypt [--seed N] [--seeds N] [--base N] [-v] */
// NO_VALGRIND: 30x slower under valgrind; the plain sim runs there, and the
// sealing and opening code runs under valgrind in test_picolog_encrypt.
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"

static const uint8_t sim_key[32] = { 's', 'i', 'm', ' ', 'k', 'e', 'y', 0, 1, 2, 3, 4, 5, 6, 7, 8,
                                     9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24 };
static int sim_open_encrypted(plg_log **out, const plg_config *cfg) {
    plg_config c = *cfg;
    c.encrypt_key = sim_key;
    return plg_open(out, &c);
}
#define plg_open(out, cfg) sim_open_encrypted((out), (cfg))
#define plg_reader_open(out, path) plg_reader_open_key((out), (path), sim_key)
#define plg_check(path, out) plg_check_key((path), sim_key, (out))
#define SIM_VARIANT 1
#define SIM_SEEDS_ENV "PLG_SIM_ENC_SEEDS"     /* valgrind.sh sets PLG_SIM_SEEDS for the plain run */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SIM_DEFAULT_SEEDS 5
#else
#define SIM_DEFAULT_SEEDS 20
#endif
#include "test_sim_picolog.c"
