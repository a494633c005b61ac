/* An engine file that includes another module's private header. */
#include "dag/dag_internal.h"
#include "engine_internal.h"
