package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Priorities of the controller's work queue (controller-runtime's priority queue, on by default): a look
// that may wake a target or end a cooldown goes before everything else, routine looks after everything
// else. A request already queued takes the higher of its priorities.
const (
	// priorityWake: a trigger turned active or idle, started or stopped failing, reached the fallback
	// threshold, the guard changed its state, or a cooldown ends.
	priorityWake = 10
	// priorityDefault: changes of the spec, the HPA, authentication, Secrets.
	priorityDefault = 0
	// priorityRoutine: numbers and texts for status, and the periodic recheck.
	priorityRoutine = handler.LowPriority
)

// wakeUp asks the controller to look at a ScaledConsumer with a priority.
type wakeUp struct {
	key      types.NamespacedName
	priority int
}

// enqueueWakeUp queues a wakeUp's request with its priority.
var enqueueWakeUp = handler.TypedFuncs[wakeUp, reconcile.Request]{
	GenericFunc: func(_ context.Context, e event.TypedGenericEvent[wakeUp], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		req := reconcile.Request{NamespacedName: e.Object.key}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr(e.Object.priority)}, req)
			return
		}
		q.Add(req)
	},
}
