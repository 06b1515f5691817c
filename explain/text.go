package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// JSON writes e as indented JSON, the form of `ebb explain -o json` (Format).
func JSON(w io.Writer, e Explanation) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(e)
}

// Text writes e for a person: one screen, the decision first.
func Text(w io.Writer, e Explanation) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ScaledConsumer %s/%s at %s\n", e.Namespace, e.Name, e.Time.Format(time.RFC3339))
	t := e.Target
	fmt.Fprintf(&b, "Target:    %s %s, replicas %s", t.Kind, t.Name, num(t.Replicas))
	if t.CurrentReplicas != nil && t.Replicas != nil && *t.CurrentReplicas != *t.Replicas {
		fmt.Fprintf(&b, " (status.replicas %d)", *t.CurrentReplicas)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "State:     %s: %s\n", e.State, e.StateMessage)
	if e.LastActiveTime != nil {
		fmt.Fprintf(&b, "Active:    last at %s (%s)\n", e.LastActiveTime.Format(time.RFC3339), ago(e.Time, *e.LastActiveTime))
	}
	fmt.Fprintf(&b, "Decided by: %s", e.BoundBy)
	if e.Asked != nil {
		fmt.Fprintf(&b, " (the triggers ask for %d)", *e.Asked)
	}
	b.WriteString("\n")
	if h := e.HPA; h != nil {
		fmt.Fprintf(&b, "HPA:       %s wants %d, has %d (min %d, max %d)", h.Name, h.DesiredReplicas, h.CurrentReplicas, h.MinReplicas, h.MaxReplicas)
		if h.LastScaleTime != nil {
			fmt.Fprintf(&b, ", last scaled %s", ago(e.Time, *h.LastScaleTime))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("HPA:       none\n")
	}
	b.WriteString("Next:      ")
	if e.Next.At != nil {
		fmt.Fprintf(&b, "at %s (%s), ", e.Next.At.Format(time.RFC3339), until(e.Time, *e.Next.At))
	}
	fmt.Fprintf(&b, "%s %s\n", e.Next.Actor, e.Next.Action)
	b.WriteString("\nTriggers:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tMETRIC\tVALUE\tREAD\tTARGET\tASKS\tACTIVE\tLAST ERROR")
	for _, tr := range e.Triggers {
		errText := "-"
		if tr.LastError != "" {
			errText = fmt.Sprintf("%s (%d in a row, status of %s)", oneLine(tr.LastError, 60), tr.ConsecutiveFailures, stamp(e.Time, tr.LastPollTime))
		}
		if len(tr.Metrics) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\t-\t%s\t%s\t-\t-\t%s\t%s\n", tr.Name, tr.Type, orDash(tr.StatusValue), "status "+stamp(e.Time, tr.LastPollTime), yes(tr.Active), errText)
			continue
		}
		for _, m := range tr.Metrics {
			read := "-"
			switch {
			case m.ValueTime != nil:
				read = ago(e.Time, *m.ValueTime)
			case m.Source != "":
				read = m.Source
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tr.Name, tr.Type, m.Metric, orDash(m.Value), read, orDash(m.Target), num(m.Replicas), yes(tr.Active), errText)
		}
	}
	_ = tw.Flush()
	for _, tr := range e.Triggers {
		for _, m := range tr.Metrics {
			if m.Math == "" {
				continue
			}
			note := ""
			if m.Fallback {
				note = " (fallback value)"
			}
			fmt.Fprintf(&b, "  %s: %s%s\n", m.Metric, m.Math, note)
		}
		if tr.Message != "" {
			fmt.Fprintf(&b, "  %s: %s\n", tr.Name, tr.Message)
		}
	}
	b.WriteString("\nLimits:\n")
	for _, l := range e.Limits {
		mark := " "
		if l.Binding {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %s %-14s %-5s %s\n", mark, l.Name, num(l.Replicas), l.Message)
	}
	if g := e.Guard; g != nil && g.Status != "Unknown" {
		fmt.Fprintf(&b, "\nGuard:     ConsumersHealthy=%s (%s)", g.Status, g.Reason)
		if g.Tripped {
			fmt.Fprintf(&b, ", holding scale-up at %s", num(g.HeldReplicas))
		}
		if g.Since != nil {
			fmt.Fprintf(&b, " since %s", ago(e.Time, *g.Since))
		}
		if g.Message != "" {
			fmt.Fprintf(&b, ": %s", g.Message)
		}
		b.WriteString("\n")
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func num(p *int32) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	return ago(now, *t)
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + roundAge(-d)
	}
	return roundAge(d) + " ago"
}

func until(now, t time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "due now"
	}
	return "in " + roundAge(d)
}

func roundAge(d time.Duration) string { return d.Round(time.Second).String() }

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
