/* The whole picolog suite again with PICOLOG_NO_URING: pwritev2 from the
 * writer thread must give the same guarantees. */
#define PICOLOG_NO_URING
#include "test_picolog.c"
