package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{
		"CONSUMER_BROKER":     "kafka",
		"CONSUMER_TOPIC":      "orders",
		"CONSUMER_RATE":       "2.5",
		"CONSUMER_FAIL_RATIO": "0.1",
		"CONSUMER_ID":         "pod-1",
	}
	got, err := parseConfig([]string{"--rate", "7", "--results", "done"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Broker: "kafka", Brokers: "127.0.0.1:9092", URL: "amqp://guest:guest@127.0.0.1:5672/", Topic: "orders",
		Group: "consumer", Rate: 7, FailRatio: 0.1, DeadLetter: "orders.dlq", Results: "done", ID: "pod-1",
		Prefetch: 10, LogEvery: time.Second,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("config (-got +want):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{name: "no-broker", want: []string{`--broker ""`}},
		{name: "kafka-without-topic", args: []string{"--broker", "kafka"}, want: []string{"--topic is required"}},
		{name: "rabbitmq-without-queue", args: []string{"--broker", "rabbitmq"}, want: []string{"--queue is required"}},
		{name: "bad-values", args: []string{"--broker", "rabbitmq", "--queue", "q", "--rate", "-1", "--fail-ratio", "1.5", "--prefetch", "0"},
			want: []string{"--rate -1", "--fail-ratio 1.5", "--prefetch 0"}},
		{name: "bad-env", args: []string{"--broker", "kafka", "--topic", "t"}, env: map[string]string{"CONSUMER_RATE": "fast"}, want: []string{`CONSUMER_RATE="fast"`}},
		{name: "unknown-flag", args: []string{"--nope"}, want: []string{"-nope", "usage:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestFailsShare(t *testing.T) {
	for _, ratio := range []float64{0, 0.1, 0.5, 1} {
		n := 0
		const total = 10_000
		for i := range total {
			if fails("key-"+strconv.Itoa(i), ratio) {
				n++
			}
		}
		if got := float64(n) / total; got < ratio-0.03 || got > ratio+0.03 {
			t.Errorf("ratio %v: %v of keys fail", ratio, got)
		}
	}
}

func TestDecideRemembersKeys(t *testing.T) {
	p := newProcessor(0, 0)
	got := []outcome{p.decide("a"), p.decide("b"), p.decide("a")}
	if diff := cmp.Diff(got, []outcome{processed, processed, duplicate}); diff != "" {
		t.Errorf("outcomes (-got +want):\n%s", diff)
	}
	if s := p.summary(); s != "processed=2 failed=0 duplicates=1" {
		t.Errorf("summary %q", s)
	}
}

func TestParseConfigHelp(t *testing.T) {
	_, err := parseConfig([]string{"--help"}, func(string) string { return "" })
	var help *helpError
	if !errors.As(err, &help) || !strings.Contains(help.usage, "$CONSUMER_FAIL_RATIO") {
		t.Errorf("--help: %v, want the usage with the environment variables", err)
	}
}

func TestPollSize(t *testing.T) {
	for _, tc := range []struct {
		prefetch int
		rate     float64
		want     int
	}{
		{prefetch: 10, rate: 0, want: 10},
		{prefetch: 10, rate: 100, want: 10},
		{prefetch: 100, rate: 2, want: 10},
		{prefetch: 10, rate: 0.01, want: 1},
	} {
		if got := pollSize(tc.prefetch, tc.rate); got != tc.want {
			t.Errorf("pollSize(%d, %v) = %d, want %d", tc.prefetch, tc.rate, got, tc.want)
		}
	}
}
