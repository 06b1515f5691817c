package v1alpha1

// MetadataValue is the value of one trigger or dead-letter metadata key: at most 4096 characters, room
// for a list of a hundred broker addresses. Keys are at most 63 characters, and a map holds at most 64 of
// them. Admission refuses, besides, what would fail later or leak:
//   - a key the trigger type takes only from a TriggerAuthentication (password, token, nkeySeed, creds
//     for every type; ca, cert and key too for kafka, rabbitmq and nats-jetstream), since metadata is
//     stored in plain text, as is kubectl's last-applied annotation;
//   - a URL with a password in it (amqp://user:pass@host) in host, natsServerURL,
//     natsServerMonitoringEndpoint or bootstrapServers, for the same reason;
//   - names the broker would refuse: a Kafka topic (at most 249 characters of letters, digits, '.', '_'
//     and '-'), a RabbitMQ queue or vhost (at most 255 bytes), a NATS JetStream stream or consumer (at
//     most 255 bytes, no whitespace, '.', '*', '>', '/' or '\').
//
// It is an alias, so metadata stays a map[string]string in Go; the type exists to carry the bound into the
// CRD's schema, which lets the API server estimate the cost of the rules above.
//
// +kubebuilder:validation:MaxLength=4096
type MetadataValue = string
