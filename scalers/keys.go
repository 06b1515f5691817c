package scalers

import (
	"fmt"
	"slices"
	"strings"
)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func unknownKeyMsg(k string, fields []field) string {
	if hint := didYouMean(k, fields); hint != "" {
		return "unknown key" + hint
	}
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		if !f.Secret {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return "unknown key; known keys: " + strings.Join(names, ", ")
}

// didYouMean suggests the known key closest to k, when it is a likely typo (case, or two edits).
func didYouMean(k string, fields []field) string {
	best, bestD := "", 3
	for _, f := range fields {
		if strings.EqualFold(f.Name, k) {
			return fmt.Sprintf(" (did you mean %q?)", f.Name)
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(f.Name)); d < bestD {
			best, bestD = f.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// notAKeyOf says that a key is not one of fields, which are the keys of what.
func notAKeyOf(what string, fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return fmt.Sprintf("not a key of %s; it takes %s", what, strings.Join(names, ", "))
}
