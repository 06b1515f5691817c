package controller_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// TestHugeSampleError makes a trigger fail with an error of 120,000 bytes: status must still be written,
// the Fallback message and the trigger's lastError cut at a rune boundary within their limits. Before,
// every status write failed and status kept saying that every sample succeeded.
func TestHugeSampleError(t *testing.T) {
	h := newHarness(t)
	h.deployment("huge-error", 1)
	h.create(h.scaledConsumer("huge-error", "huge-error", "q"))
	h.src.Fail(h.ns+"/q", errors.New("broker said: "+strings.Repeat("é", 60000)))
	c := h.waitCondition("huge-error", ebbv1.ConditionFallback, metav1.ConditionFalse, controller.ReasonNoFallbackConfigured)
	checkText(t, "Fallback message", c.Message, 32768, "broker said: éé")
	ts := h.getSC("huge-error").Status.Triggers
	if len(ts) != 1 {
		t.Fatalf("status.triggers = %+v, want one", ts)
	}
	checkText(t, "lastError", ts[0].LastError, 4096, "broker said: éé")
}

// TestHugeParseErrors gives a ScaledConsumer 32 triggers whose parse errors each quote a value of 4096
// two-byte characters, which admission lets through: the Ready message must be cut within its limit and
// the Warning event's note within the events API's, so both are written.
func TestHugeParseErrors(t *testing.T) {
	h := newHarness(t)
	sc := h.scaledConsumer("huge-parse", "huge-parse")
	bad := strings.Repeat("é", 4096)
	for i := range 32 {
		sc.Spec.Triggers = append(sc.Spec.Triggers, ebbv1.Trigger{
			Name: fmt.Sprintf("t%d", i), Type: scalertest.Type, Metadata: map[string]string{"key": "k", "target": bad},
		})
	}
	h.create(sc)
	c := h.waitCondition("huge-parse", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidTrigger)
	checkText(t, "Ready message", c.Message, 32768, `trigger "t0"`)
	note := h.waitEvent("huge-parse", controller.ReasonInvalidTrigger)
	checkText(t, "event note", note, 1024, `trigger "t0"`)
}

// checkText checks that s is valid UTF-8 of at most limit bytes that says want.
func checkText(t *testing.T, what, s string, limit int, want string) {
	t.Helper()
	if len(s) > limit || !utf8.ValidString(s) || !strings.Contains(s, want) {
		t.Errorf("%s: %d bytes (limit %d), valid UTF-8 %t, says %q: %t", what, len(s), limit, utf8.ValidString(s), want, strings.Contains(s, want))
	}
}
