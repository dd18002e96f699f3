package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/overcommit-dev/overcommit/deploy"
)

// Rendered decodes deploy's manifests for an overlay and mode, as `kubectl overcommit install`
// prints them, into typed objects. Kinds client-go's scheme does not know (cert-manager's) are
// skipped: the suites create the built-in kinds only.
func Rendered(overlay, mode string) ([]runtime.Object, error) {
	data, err := deploy.Render(overlay, mode, "")
	if err != nil {
		return nil, fmt.Errorf("rendering %s in %s mode: %w", overlay, mode, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []runtime.Object
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding %s in %s mode: %w", overlay, mode, err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decoding %s in %s mode: %w", overlay, mode, err)
		}
		objs = append(objs, obj)
	}
}
