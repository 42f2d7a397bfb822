// Validate custom resources against their upstream CRD schemas: reads a JSON array of manifests on stdin,
// prints a JSON array of {index, error} (error null when valid). Used by tests/unit/platform/test_validation.py.
const PACKAGES = {
  "networking.istio.io": "istio",
  "security.istio.io": "istio",
  "monitoring.coreos.com": "prometheus-operator",
  "argoproj.io": "argo-cd",
  "keda.sh": "keda",
  "cert-manager.io": "cert-manager",
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const [index, doc] of JSON.parse(input).entries()) {
  const [group, version] = doc.apiVersion.split("/");
  const pkg = PACKAGES[group];
  if (!pkg) {
    results.push({ index, error: `no upstream schema package for ${doc.apiVersion}` });
    continue;
  }
  try {
    const mod = await import(`@kubernetes-models/${pkg}/${group}/${version}/${doc.kind}`);
    new mod[doc.kind](doc).validate();
    results.push({ index, error: null });
  } catch (e) {
    results.push({ index, error: String(e.message || e) });
  }
}
process.stdout.write(JSON.stringify(results));
