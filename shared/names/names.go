// Package names holds the labels, annotations and other identifiers that make up overcommit's
// public surface. Tests, docs and deploy manifests rely on them; change them only everywhere at once.
package names

import "slices"

const (
	// Prefix is the domain of every label and annotation overcommit owns.
	Prefix = "overcommit.dev/"

	// EnabledLabel opts a Node in. The webhook's objectSelector matches it, so other nodes never
	// reach the webhook.
	EnabledLabel = Prefix + "enabled"
	// EnabledValue is the only value of EnabledLabel that opts a node in.
	EnabledValue = "true"

	// CPURatioAnnotation and MemoryRatioAnnotation set a node's overcommit ratio (a decimal >= 1).
	// Missing means the webhook's default.
	CPURatioAnnotation    = Prefix + "cpu-ratio"
	MemoryRatioAnnotation = Prefix + "memory-ratio"
	// PolicyAnnotation selects the policy: PolicyStatic (default) or PolicyUsage.
	PolicyAnnotation = Prefix + "policy"

	// RawAnnotation is written by the webhook: the kubelet's own allocatable and capacity (JSON).
	RawAnnotation = Prefix + "raw"
	// AppliedAnnotation is written by the webhook: what it last set (JSON).
	AppliedAnnotation = Prefix + "applied"
	// UsageTargetAnnotation is written by the webhook in policy mode: what the usage policy may
	// reclaim on the node ("cpu=<millicores>m,memory=<bytes>"), read by the in-apiserver policy.
	UsageTargetAnnotation = Prefix + "usage-target"
	// RequestsAnnotation is written by the webhook in policy mode on every opted-in node: the
	// summed requests of its pods ("cpu=<millicores>m,memory=<bytes>"), which the in-apiserver
	// policy's pressure guard holds allocatable at.
	RequestsAnnotation = Prefix + "requests"
	// UsageTargetFieldManager is the field manager of the webhook's usage-target writes (see
	// WebhookFieldManager for its other writes).
	UsageTargetFieldManager = "overcommit-usage-targets"

	// SidecarInjectionLabel on a Namespace opts its pods in to sidecar injection.
	SidecarInjectionLabel = Prefix + "sidecar-injection"
	// SidecarInjectionEnabled is the value of SidecarInjectionLabel that opts a namespace in.
	SidecarInjectionEnabled = "enabled"
	// SidecarTemplateLabel marks ConfigMaps in the webhook's namespace that hold sidecar templates.
	SidecarTemplateLabel = Prefix + "sidecar-template"

	// SidecarInjectAnnotation on a Pod lists the templates it asks for: "a,b".
	SidecarInjectAnnotation = "sidecar.overcommit.dev/inject"
	// SidecarStatusAnnotation is written by the webhook: what was injected (JSON), for idempotency.
	SidecarStatusAnnotation = "sidecar.overcommit.dev/status"
)

// Policies understood by the webhook.
const (
	PolicyStatic = "static"
	PolicyUsage  = "usage"
)

// NodeUserPrefix starts the username a kubelet authenticates as: system:node:<name>.
const NodeUserPrefix = "system:node:"

// KubeletUser returns the username of the named node's kubelet.
func KubeletUser(nodeName string) string { return NodeUserPrefix + nodeName }

// WebhookConfigurationName is the MutatingWebhookConfiguration of the install: the pod webhook
// always, and the node webhook (NodeWebhookName) in webhook mode.
const WebhookConfigurationName = "overcommit"

// NodeWebhookName is the node webhook of WebhookConfigurationName; it is there in webhook mode only.
const NodeWebhookName = "nodes.overcommit.dev"

// SettingsConfigMap, in the install's namespace, holds the policy settings (policy.Settings.Data):
// the webhook, `kubectl overcommit` and the MutatingAdmissionPolicy (as its params) read it.
const SettingsConfigMap = "overcommit-settings"

// Namespace is the install's namespace.
const Namespace = "overcommit-system"

// NodePolicyName names the MutatingAdmissionPolicy (and its binding) of policy mode.
const NodePolicyName = "overcommit-nodes"

// WarningPrefix starts every admission warning and denial message the webhook writes, so users
// know where it came from; the plugin drops it where it repeats the webhook's warnings.
const WarningPrefix = "overcommit: "

// SystemNamespaces are never injected with sidecars, whatever the webhook's namespaceSelector
// says; the install's namespaceSelector excludes them (and Namespace) too.
func SystemNamespaces() []string {
	return []string{"kube-system", "kube-public", "kube-node-lease"}
}

// IsSystemNamespace reports whether ns is one of SystemNamespaces.
func IsSystemNamespace(ns string) bool {
	return slices.Contains(SystemNamespaces(), ns)
}

// Field managers name overcommit's writes in managedFields and audit logs.
const (
	// WebhookFieldManager names the webhook's own writes (its serving Secret, the caBundle).
	WebhookFieldManager = "overcommit-webhook"
	// PluginFieldManager names the writes of `kubectl overcommit`.
	PluginFieldManager = "kubectl-overcommit"
)
