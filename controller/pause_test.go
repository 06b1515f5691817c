package controller

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

func TestPauseOf(t *testing.T) {
	type pause struct {
		Paused   bool
		Replicas *int32
	}
	tests := []struct {
		name        string
		annotations map[string]string
		want        pause
		// wantErr is the annotation the error must name; empty when there is no error.
		wantErr string
	}{
		{name: "no-annotations", annotations: nil, want: pause{}},
		{name: "other-annotations", annotations: map[string]string{"team": "orders"}, want: pause{}},
		{name: "paused-true", annotations: map[string]string{ebbv1.PausedAnnotation: "true"}, want: pause{Paused: true}},
		{name: "paused-false", annotations: map[string]string{ebbv1.PausedAnnotation: "false"}, want: pause{}},
		{name: "paused-spaces-and-case", annotations: map[string]string{ebbv1.PausedAnnotation: " TRUE "}, want: pause{Paused: true}},
		{name: "paused-invalid", annotations: map[string]string{ebbv1.PausedAnnotation: "yes"},
			want: pause{Paused: true}, wantErr: ebbv1.PausedAnnotation},
		{name: "paused-empty", annotations: map[string]string{ebbv1.PausedAnnotation: ""},
			want: pause{Paused: true}, wantErr: ebbv1.PausedAnnotation},
		{name: "paused-replicas", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "3"},
			want: pause{Paused: true, Replicas: ptr(int32(3))}},
		{name: "paused-replicas-zero", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "0"},
			want: pause{Paused: true, Replicas: ptr(int32(0))}},
		{name: "paused-replicas-spaces", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: " 2 "},
			want: pause{Paused: true, Replicas: ptr(int32(2))}},
		{name: "paused-replicas-negative", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "-1"},
			want: pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "paused-replicas-not-a-number", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "two"},
			want: pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "paused-replicas-fraction", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "1.5"},
			want: pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "paused-replicas-overflows-int32", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: "3000000000"},
			want: pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "paused-replicas-empty", annotations: map[string]string{ebbv1.PausedReplicasAnnotation: ""},
			want: pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "paused-replicas-beats-paused-false",
			annotations: map[string]string{ebbv1.PausedAnnotation: "false", ebbv1.PausedReplicasAnnotation: "2"},
			want:        pause{Paused: true, Replicas: ptr(int32(2))}},
		{name: "invalid-paused-replicas-beats-paused-false",
			annotations: map[string]string{ebbv1.PausedAnnotation: "false", ebbv1.PausedReplicasAnnotation: "x"},
			want:        pause{Paused: true}, wantErr: ebbv1.PausedReplicasAnnotation},
		{name: "valid-paused-replicas-ignores-invalid-paused",
			annotations: map[string]string{ebbv1.PausedAnnotation: "maybe", ebbv1.PausedReplicasAnnotation: "1"},
			want:        pause{Paused: true, Replicas: ptr(int32(1))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &ebbv1.ScaledConsumer{ObjectMeta: metav1.ObjectMeta{Name: "orders", Annotations: tc.annotations}}
			paused, replicas, err := pauseOf(sc)
			if diff := cmp.Diff(pause{Paused: paused, Replicas: replicas}, tc.want); diff != "" {
				t.Errorf("pauseOf (-got +want):\n%s", diff)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error = %v, want none", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("no error, want one naming %s", tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error = %v, want it to name %s", err, tc.wantErr)
			}
		})
	}
}
