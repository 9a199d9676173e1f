/*
 * hosted/format.c - lib/printf.c under private names (see format.h).
 */
#define vsnprintf spanheap_vsnprintf
#define snprintf spanheap_snprintf
#include "lib/printf.c"
