// Package builtin is the table of the trigger types the ebb binary knows: for each, its name, a sentence
// of docs, its parameters and how to build it. The CLI builds its registry from it (Registry), the
// parameter docs are generated from it (hack/gen-trigger-docs, Params), and tests that want the real
// trigger types use it too. It imports the scaler packages and nothing of the CLI, so a user of the table
// does not link cobra, envtest or the development tools.
//
// Request observation (ebb's broker request metrics) is an option of the table (Options.ObserveRequests),
// given to each type in its own terms; the types and the metrics know nothing of each other.
package builtin
