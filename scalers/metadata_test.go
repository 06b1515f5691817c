package scalers_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
)

// ranges parses "1,2,10-12" as KEDA's partitionLimitation does.
type ranges []int32

func (r *ranges) UnmarshalText(b []byte) error {
	for part := range strings.SplitSeq(string(b), ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseInt(lo, 10, 32)
		if err != nil {
			return fmt.Errorf("bad partition %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 32); err != nil || b < a {
				return fmt.Errorf("bad partition range %q", part)
			}
		}
		for p := a; p <= b; p++ {
			*r = append(*r, int32(p))
		}
	}
	return nil
}

type sample struct {
	Servers    []string      `ebb:"bootstrapServers"`
	Group      string        `ebb:"consumerGroup"`
	Topic      string        `ebb:"topic,optional"`
	Lag        int64         `ebb:"lagThreshold,default=10,min=1"`
	Activation int64         `ebb:"activationLagThreshold,default=0,min=0"`
	Policy     string        `ebb:"offsetResetPolicy,default=latest,enum=latest|earliest"`
	Idle       bool          `ebb:"allowIdleConsumers,optional"`
	Timeout    time.Duration `ebb:"timeout,default=3s,min=1ms,max=1m"`
	Ratio      float64       `ebb:"ratio,optional,max=1"`
	Partitions ranges        `ebb:"partitionLimitation,optional"`
	Password   string        `ebb:"password,secret,optional"`
	notAKey    int           //nolint:unused // untagged fields are not parameters; Describe and Parse skip them
}

func (s *sample) Validate() error {
	if s.Idle && s.Topic == "" {
		return &scalers.FieldError{Key: "allowIdleConsumers", Msg: "needs topic"}
	}
	return nil
}

// keysOf lists the keys of the FieldErrors in err, with their messages.
func keysOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		var fe *scalers.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Key+": "+fe.Msg)
			return
		}
		out = append(out, "?: "+e.Error())
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestParse(t *testing.T) {
	base := map[string]string{"bootstrapServers": "a:9092, b:9092", "consumerGroup": "orders"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	defaults := sample{Servers: []string{"a:9092", "b:9092"}, Group: "orders", Lag: 10, Policy: "latest", Timeout: 3 * time.Second}
	tests := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		want     sample
		// wantErrs are "key: message" prefixes, in order; empty means success.
		wantErrs []string
	}{
		{name: "defaults", metadata: base, want: defaults},
		{name: "every-field", metadata: with("topic", "orders", "lagThreshold", "50", "activationLagThreshold", "5",
			"offsetResetPolicy", "earliest", "allowIdleConsumers", "true", "timeout", "250ms", "ratio", "0.5",
			"partitionLimitation", "1,2, 10-12"),
			want: sample{Servers: []string{"a:9092", "b:9092"}, Group: "orders", Topic: "orders", Lag: 50, Activation: 5,
				Policy: "earliest", Idle: true, Timeout: 250 * time.Millisecond, Ratio: 0.5, Partitions: ranges{1, 2, 10, 11, 12}}},
		{name: "secret-from-auth", metadata: base, auth: map[string]string{"password": "s3cret"},
			want: func() sample { s := defaults; s.Password = "s3cret"; return s }()},
		{name: "auth-overrides-metadata", metadata: with("consumerGroup", "x"), auth: map[string]string{"consumerGroup": "orders"}, want: defaults},
		{name: "whitespace-is-absent", metadata: with("lagThreshold", "  "), want: defaults},
		{name: "list-drops-empty-items", metadata: with("bootstrapServers", "a:9092,,b:9092,"), want: defaults},

		{name: "secret-in-metadata", metadata: with("password", "s3cret"),
			wantErrs: []string{"password: is a secret: set it through a TriggerAuthentication"}},
		{name: "typo", metadata: with("lagTreshold", "5"),
			wantErrs: []string{`lagTreshold: unknown key (did you mean "lagThreshold"?)`}},
		{name: "wrong-case", metadata: with("LAGTHRESHOLD", "5"),
			wantErrs: []string{`LAGTHRESHOLD: unknown key (did you mean "lagThreshold"?)`}},
		{name: "unknown-key-lists-known", metadata: with("queueName", "q"),
			wantErrs: []string{"queueName: unknown key; known keys: activationLagThreshold, allowIdleConsumers, bootstrapServers, consumerGroup, lagThreshold, offsetResetPolicy, partitionLimitation, ratio, timeout, topic"}},
		{name: "missing-required-all-reported", metadata: map[string]string{},
			wantErrs: []string{"bootstrapServers: is required", "consumerGroup: is required"}},
		{name: "not-an-integer", metadata: with("lagThreshold", "ten"), wantErrs: []string{`lagThreshold: must be an integer, got "ten"`}},
		{name: "integer-overflow", metadata: with("lagThreshold", "99999999999999999999"), wantErrs: []string{"lagThreshold: must be an integer"}},
		{name: "below-min", metadata: with("lagThreshold", "0"), wantErrs: []string{"lagThreshold: must be at least 1"}},
		{name: "negative", metadata: with("activationLagThreshold", "-1"), wantErrs: []string{"activationLagThreshold: must be at least 0"}},
		{name: "above-max", metadata: with("ratio", "1.5"), wantErrs: []string{"ratio: must be at most 1"}},
		{name: "not-a-number", metadata: with("ratio", "half"), wantErrs: []string{`ratio: must be a number, got "half"`}},
		{name: "nan", metadata: with("ratio", "NaN"), wantErrs: []string{`ratio: must be a finite number, got "NaN"`}},
		{name: "infinity", metadata: with("ratio", "-inf"), wantErrs: []string{`ratio: must be a finite number, got "-inf"`}},
		{name: "not-a-bool", metadata: with("allowIdleConsumers", "yes"), wantErrs: []string{`allowIdleConsumers: must be true or false, got "yes"`}},
		{name: "not-a-duration", metadata: with("timeout", "3"), wantErrs: []string{`timeout: must be a duration such as 30s or 5m, got "3"`}},
		{name: "duration-above-max", metadata: with("timeout", "2m"), wantErrs: []string{"timeout: must be at most 1m"}},
		{name: "enum", metadata: with("offsetResetPolicy", "oldest"), wantErrs: []string{`offsetResetPolicy: must be one of latest, earliest, got "oldest"`}},
		{name: "custom-type", metadata: with("partitionLimitation", "1,5-3"), wantErrs: []string{`partitionLimitation: bad partition range "5-3"`}},
		{name: "auth-unknown-parameter", metadata: base, auth: map[string]string{"pasword": "x"},
			wantErrs: []string{`pasword: TriggerAuthentication sets a parameter this trigger type does not have (did you mean "password"?)`}},
		{name: "many-errors-at-once", metadata: map[string]string{"consumerGroup": "g", "lagThreshold": "x", "offsetResetPolicy": "none", "extra": "1"},
			wantErrs: []string{"extra: unknown key", "bootstrapServers: is required", "lagThreshold: must be an integer", "offsetResetPolicy: must be one of"}},
		{name: "cross-field-rule", metadata: with("allowIdleConsumers", "true"), wantErrs: []string{"allowIdleConsumers: needs topic"}},
		{name: "cross-field-rule-waits-for-fields", metadata: with("allowIdleConsumers", "true", "lagThreshold", "0"),
			wantErrs: []string{"lagThreshold: must be at least 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got sample
			err := scalers.Parse(tc.metadata, tc.auth, &got)
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if diff := cmp.Diff(got, tc.want, cmp.AllowUnexported(sample{})); diff != "" {
					t.Errorf("parsed (-got +want):\n%s", diff)
				}
				return
			}
			gotErrs := keysOf(err)
			if len(gotErrs) != len(tc.wantErrs) {
				t.Fatalf("errors %q, want %d starting %q", gotErrs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, want := range tc.wantErrs {
				if !strings.HasPrefix(gotErrs[i], want) {
					t.Errorf("error %d = %q, want it to start %q", i, gotErrs[i], want)
				}
			}
		})
	}
}

func TestParseRejectsBadSchemas(t *testing.T) {
	tests := []struct {
		name    string
		out     any
		wantErr string
	}{
		{name: "not-a-pointer", out: sample{}, wantErr: "needs a non-nil pointer"},
		{name: "bad-option", out: &struct {
			A string `ebb:"a,requird"`
		}{}, wantErr: `unknown ebb tag option "requird"`},
		{name: "bad-default", out: &struct {
			A int `ebb:"a,default=ten"`
		}{}, wantErr: `default "ten": must be an integer`},
		{name: "bad-min", out: &struct {
			A int `ebb:"a,min=one"`
		}{}, wantErr: `min "one"`},
		{name: "bad-duration-max", out: &struct {
			A time.Duration `ebb:"a,max=1d"`
		}{}, wantErr: `max "1d"`},
		{name: "bound-on-string", out: &struct {
			A string `ebb:"a,min=1"`
		}{}, wantErr: "min and max apply to numbers and durations"},
		{name: "unsupported-type", out: &struct {
			A map[string]string `ebb:"a"`
		}{}, wantErr: "unsupported field type"},
		{name: "duplicate-key", out: &struct {
			A string `ebb:"a"`
			B string `ebb:"a"`
		}{}, wantErr: `key "a" declared twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := scalers.Parse(map[string]string{}, nil, tc.out)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	params, err := scalers.Describe(&sample{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]scalers.Param{}
	for _, p := range params {
		got[p.Name] = p
	}
	want := map[string]scalers.Param{
		"lagThreshold":        {Name: "lagThreshold", Type: "integer", Default: "10", Min: "1"},
		"offsetResetPolicy":   {Name: "offsetResetPolicy", Type: "string", Default: "latest", Enum: []string{"latest", "earliest"}},
		"bootstrapServers":    {Name: "bootstrapServers", Type: "list of string"},
		"timeout":             {Name: "timeout", Type: "duration", Default: "3s", Min: "1ms", Max: "1m"},
		"password":            {Name: "password", Type: "string", Optional: true, Secret: true},
		"partitionLimitation": {Name: "partitionLimitation", Type: "string", Optional: true},
	}
	for name, w := range want {
		if diff := cmp.Diff(got[name], w); diff != "" {
			t.Errorf("param %s (-got +want):\n%s", name, diff)
		}
	}
	if len(params) != 11 || params[0].Name != "bootstrapServers" {
		t.Errorf("Describe returned %d params starting %q, want 11 in declaration order", len(params), params[0].Name)
	}
}
