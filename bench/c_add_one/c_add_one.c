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

/* The C baselines for the text and array benchmarks (bench/varlena.py). */
#include "utils/array.h"
#include <math.h>

/* The boundary's floor: a copy of the text in a new varlena, what any echo must do. */
PG_FUNCTION_INFO_V1(c_echo_text);
Datum
c_echo_text(PG_FUNCTION_ARGS)
{
    text   *in = PG_GETARG_TEXT_PP(0);
    int     len = VARSIZE_ANY_EXHDR(in);
    text   *out = (text *) palloc(len + VARHDRSZ);

    SET_VARSIZE(out, len + VARHDRSZ);
    memcpy(VARDATA(out), VARDATA_ANY(in), len);
    PG_RETURN_TEXT_P(out);
}

PG_FUNCTION_INFO_V1(c_ascii_upper);
Datum
c_ascii_upper(PG_FUNCTION_ARGS)
{
    text   *in = PG_GETARG_TEXT_PP(0);
    int     len = VARSIZE_ANY_EXHDR(in);
    const char *src = VARDATA_ANY(in);
    text   *out = (text *) palloc(len + VARHDRSZ);
    char   *dst = VARDATA(out);

    SET_VARSIZE(out, len + VARHDRSZ);
    for (int i = 0; i < len; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? src[i] - 32 : src[i];
    PG_RETURN_TEXT_P(out);
}

PG_FUNCTION_INFO_V1(c_l2_norm);
Datum
c_l2_norm(PG_FUNCTION_ARGS)
{
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(0);
    int     n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
    const double *x = (const double *) ARR_DATA_PTR(a);
    double  sum = 0;

    if (ARR_HASNULL(a))
        ereport(ERROR, (errmsg("array must not contain nulls")));
    for (int i = 0; i < n; i++)
        sum += x[i] * x[i];
    PG_RETURN_FLOAT8(sqrt(sum));
}
