package cli

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// --messages alone runs until that many are sent; the default --duration does not cut it short. An explicit
// --duration still does.
func TestLoadMessagesEndTheRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
	}{
		{name: "messages-alone", args: []string{"--rate", "100", "--messages", "5000"}, want: 0},
		{name: "messages-and-duration", args: []string{"--rate", "100", "--messages", "5000", "--duration", "20s"}, want: 20 * time.Second},
		{name: "duration-default", args: []string{"--rate", "100"}, want: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f loadFlags
			fs := pflag.NewFlagSet("load", pflag.ContinueOnError)
			f.register(fs, "10000")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := f.schedule(fs)
			if err != nil {
				t.Fatal(err)
			}
			if s.Duration != tc.want {
				t.Errorf("duration = %s, want %s", s.Duration, tc.want)
			}
		})
	}
}
