/* What bindgen cannot wrap: macros and thread-local variables. */
#include <rte_errno.h>
#include <rte_mbuf.h>

int ferrovs_rte_errno(void) { return rte_errno; }

void *ferrovs_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
