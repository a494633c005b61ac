#include "date.h"

#include "xalloc.h"

#include "banned.h"

int64_t date_floor_div(int64_t a, int64_t b)
{
    int64_t q;

    if (b <= 0)
        BUG("date_floor_div: divisor %lld is not positive", (long long)b);
    q = a / b;
    return a % b < 0 ? q - 1 : q;
}

int date_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned date_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m < 1 || m > 12)
        BUG("date_days_in_month: month %u is out of range 1-12", m);
    return m == 2 && date_is_leap(y) ? 29 : dim[m - 1];
}

int date_weekday(int64_t days)
{
    int64_t r = (days + 4) % 7; /* 1970-01-01 was a Thursday */

    return (int)(r < 0 ? r + 7 : r);
}
