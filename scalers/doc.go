// Package scalers holds what every trigger type shares: the typed metadata parser, the registry of
// trigger types, and the interface a scaler implements. Each trigger type is its own package below this
// one (scalers/kafka, scalers/rabbitmq, ...).
//
// Trigger metadata is parsed by Parse into a struct whose fields carry `ebb` tags (name, default, enum,
// range, optional, secret). Every problem is reported at once, joined, each naming its key; an unknown key
// is an error, since a typo is the commonest bad input and a silently ignored key is a silent
// misconfiguration.
package scalers
