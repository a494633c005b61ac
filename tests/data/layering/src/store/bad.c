/* A store file that reaches up: two forbidden includes (lines 4 and 5). */
#include "base/err.h"
#include "store.h"
#include "engine/engine.h"
#include "dag/dag_internal.h"
