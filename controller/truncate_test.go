package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		limit int
		want  string
	}{
		{name: "fits", s: "short", limit: 32, want: "short"},
		{name: "exactly", s: strings.Repeat("a", 32), limit: 32, want: strings.Repeat("a", 32)},
		{name: "ascii", s: strings.Repeat("a", 40), limit: 32, want: strings.Repeat("a", 20) + truncated},
		// "é" is two bytes: a cut at byte 20 would split the eleventh.
		{name: "two-byte-runes", s: strings.Repeat("é", 30), limit: 32, want: strings.Repeat("é", 10) + truncated},
		{name: "three-byte-runes", s: strings.Repeat("€", 30), limit: 32, want: strings.Repeat("€", 6) + truncated},
		{name: "four-byte-runes", s: strings.Repeat("𝄞", 30), limit: 32, want: strings.Repeat("𝄞", 5) + truncated},
		{name: "tiny-limit", s: "€€€", limit: 4, want: "€"},
		{name: "zero-limit", s: "abc", limit: 0, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.s, tc.limit)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("truncate (-got +want):\n%s", diff)
			}
			if len(got) > tc.limit {
				t.Errorf("len = %d, above the limit %d", len(got), tc.limit)
			}
			if !utf8.ValidString(got) {
				t.Errorf("%q is not valid UTF-8", got)
			}
		})
	}
}

// TestTruncateEveryCut checks every limit on a mix of rune widths: never above the limit, never a split
// rune, and a prefix of the text.
func TestTruncateEveryCut(t *testing.T) {
	s := strings.Repeat("aé€𝄞", 20)
	for limit := range len(s) + 2 {
		got := truncate(s, limit)
		body := strings.TrimSuffix(got, truncated)
		if len(got) > limit || !utf8.ValidString(got) || !strings.HasPrefix(s, body) {
			t.Fatalf("truncate(s, %d) = %q: want at most %d bytes of valid UTF-8, a prefix of s", limit, got, limit)
		}
	}
}
