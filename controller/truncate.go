package controller

import "unicode/utf8"

// Limits on the text ebb writes to the API server, in bytes. A longer text makes the whole write fail, so
// status and events would keep saying what they said before.
const (
	// conditionMessageLimit is metav1.Condition's limit on a condition's message.
	conditionMessageLimit = 32768
	// eventNoteLimit is the events.k8s.io/v1 API's limit on an event's note.
	eventNoteLimit = 1024
	// triggerErrorLimit is the CRD's limit on status.triggers[].lastError.
	triggerErrorLimit = 4096
	// triggerMessageLimit is the CRD's limit on status.triggers[].message.
	triggerMessageLimit = 1024
	// triggerValueLimit is the CRD's limit on status.triggers[].value.
	triggerValueLimit = 1024
)

// truncated is the marker a shortened text ends with.
const truncated = " [truncated]"

// truncate returns s when it fits in limit bytes, else its longest prefix that ends on a rune boundary
// and leaves room for the marker, followed by the marker: at most limit bytes, still valid UTF-8 when s
// was. A limit too small for the marker cuts s without one.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	marker := truncated
	if limit < 2*len(marker) {
		marker = ""
	}
	cut := limit - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}
