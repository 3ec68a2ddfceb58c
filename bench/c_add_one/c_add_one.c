/* The C baseline for plwasm's benchmark: the same work as the wasm add_one. */
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(c_add_one);
Datum
c_add_one(PG_FUNCTION_ARGS)
{
    PG_RETURN_INT64(PG_GETARG_INT64(0) + 1);
}

PG_FUNCTION_INFO_V1(c_add_one_f);
Datum
c_add_one_f(PG_FUNCTION_ARGS)
{
    PG_RETURN_FLOAT8(PG_GETARG_FLOAT8(0) + 1.0);
}
