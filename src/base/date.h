/*
 * date.h - proleptic Gregorian calendar arithmetic on whole numbers.
 *
 * Pure functions: no clocks, no time zones, no libc time calls. Days are
 * counted from 1970-01-01 (negative before it); years are astronomical
 * (year 0 is 1 BC). The conversions between a day count and a civil date
 * are clock_days_from_civil() and clock_civil_from_days() in clock.h.
 */
#ifndef ORCH_BASE_DATE_H
#define ORCH_BASE_DATE_H

#include <stdint.h>

/* Seconds in a civil day (no leap seconds). */
#define DATE_DAY_S 86400

/* a / b rounded toward negative infinity; b must be > 0. */
int64_t date_floor_div(int64_t a, int64_t b);

/* 1 if y is a leap year (divisible by 4, and not by 100 unless by 400), else 0. */
int date_is_leap(int64_t y);

/* The number of days of month m (1-12) of year y: 28 to 31. */
unsigned date_days_in_month(int64_t y, unsigned m);

/* The weekday of day number `days` since 1970-01-01: 0 = Sunday .. 6 = Saturday. */
int date_weekday(int64_t days);

#endif
