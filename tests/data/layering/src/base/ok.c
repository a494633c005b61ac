/* A base file that includes only base: no problem. */
#include "base/err.h"
#include "xalloc.h"
