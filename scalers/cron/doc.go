// Package cron is the "cron" trigger: a replica count held during time windows.
//
// A window opens at each time its start schedule names and closes at the first time after that its end
// schedule names; both are KEDA's five-field cron schedules (minute hour day-of-month month
// day-of-week, parsed by github.com/robfig/cron/v3) read on the wall clock of an IANA time zone. Inside
// a window the trigger serves desiredReplicas against an AverageValue target of 1, so the HPA asks for
// exactly desiredReplicas whatever the current count; outside it the trigger is inactive at 0, and the
// target goes back to minReplicas (the HPA) and, after cooldownPeriod, to idleReplicas or zero (the
// controller), as after any other trigger's activity.
//
// The time comes from a clock.PassiveClock (WithClock; default the real clock), so windows, midnight and
// daylight-saving transitions are tested without waiting. The rules for those transitions are in
// docs/scalers/cron.md: a time the clocks skip happens at the jump, a time they repeat happens once, at
// its first occurrence, and when start and end name the same minute the window is open.
//
// The package embeds the time zone database (time/tzdata), since ebb's image has none.
package cron
