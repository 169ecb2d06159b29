// Package spec computes the fire times of a schedule: a cron expression
// evaluated on the wall clock of an IANA time zone, or a fixed interval.
//
// Cron expressions have the standard five fields (minute hour
// day-of-month month day-of-week, with lists, ranges, steps and month or
// weekday names), an optional leading seconds field, or one of the
// descriptors @yearly, @annually, @monthly, @weekly, @daily, @midnight and
// @hourly. They are parsed with robfig/cron's parser; the fire times are
// computed here, on the wall clock of the zone, so that daylight saving
// time behaves as in Vixie cron:
//
//   - A wall-clock time that does not exist (the hour skipped when clocks
//     go forward) fires once, at the instant the clocks jump: "30 2 * * *"
//     fires at 03:00 on that day, "*/15 * * * *" fires once at 03:00.
//   - A wall-clock time that happens twice (the hour repeated when clocks
//     go back) fires once, the first time, unless the hour field matches
//     every hour: "30 1 * * *" fires once, "30 * * * *" fires in both
//     hours, as they are different hours.
//
// An interval ("every") fires at Anchor + k·Every for whole k: it ignores
// the zone, since a duration is the same in every zone.
package spec
