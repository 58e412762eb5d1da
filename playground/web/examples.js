// Workloads to start from. The Chromium test loads each one and checks that the page
// shows `verdicts` (one per document), so a policy change that breaks an example fails it.

export const EXAMPLES = [
  {
    id: 'compliant-deployment',
    label: 'Compliant Deployment',
    verdicts: ['allowed'],
    yaml: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: checkout}
  template:
    metadata:
      labels: {app.kubernetes.io/name: checkout}
      # On the pod template, not the Deployment: Prometheus discovers pods.
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9090"
        prometheus.io/path: /metrics
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: checkout
          image: ghcr.io/acme/checkout:2.3.1
          ports:
            - {name: http, containerPort: 8080, protocol: TCP}
            - {name: metrics, containerPort: 9090, protocol: TCP}
          resources:
            limits: {cpu: 500m, memory: 256Mi}
            requests: {cpu: 100m, memory: 128Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {}
`,
  },
  {
    id: 'noncompliant-deployment',
    label: 'Typical non-compliant Deployment',
    verdicts: ['denied'],
    yaml: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: inventory-api
  namespace: shop
  # Prometheus never sees these: they belong on the pod template.
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "8080"
spec:
  replicas: 3
  selector:
    matchLabels: {app: inventory-api}
  template:
    metadata:
      labels: {app: inventory-api}
    spec:
      initContainers:
        - name: wait-for-db
          image: busybox:1.36
          command: [sh, -c, "until nc -z postgres 5432; do sleep 1; done"]
      containers:
        - name: api
          image: ghcr.io/acme/inventory-api:latest
          ports:
            - {name: http, containerPort: 8080}
          resources:
            limits: {memory: 512Mi}
          securityContext:
            capabilities:
              add: [NET_ADMIN]
`,
  },
  {
    id: 'cronjob',
    label: 'CronJob',
    verdicts: ['warnings'],
    yaml: `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-ledger-report
  namespace: finance
spec:
  schedule: "30 2 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 1
      # The pod template of a CronJob sits at spec.jobTemplate.spec.template.
      template:
        metadata:
          annotations:
            prometheus.io/scrape: "true"
            prometheus.io/port: "9091"
            prometheus.io/path: /metrics
        spec:
          restartPolicy: OnFailure
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            seccompProfile: {type: RuntimeDefault}
          containers:
            - name: report
              image: ghcr.io/acme/ledger-report:1.12.0
              args: [--period=yesterday]
              ports:
                - {name: metrics, containerPort: 9091, protocol: TCP}
              resources:
                limits: {cpu: "1", memory: 1Gi}
                requests: {cpu: 200m, memory: 512Mi}
              securityContext:
                allowPrivilegeEscalation: false
                capabilities: {drop: [ALL]}
`,
  },
  {
    id: 'ephemeral-pod',
    label: 'Pod with an ephemeral container',
    verdicts: ['denied'],
    yaml: `# What \`kubectl debug -it checkout-7d9c5b6f4-p655f --image=busybox:1.36.1\` adds to a
# running Pod. Ephemeral containers run as non-root and drop capabilities like any other,
# but need no resources, ports or probes (the API forbids them).
apiVersion: v1
kind: Pod
metadata:
  name: checkout-7d9c5b6f4-p655f
  namespace: shop
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "9090"
    prometheus.io/path: /metrics
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: checkout
      image: ghcr.io/acme/checkout:2.3.1
      ports:
        - {name: metrics, containerPort: 9090, protocol: TCP}
      resources:
        limits: {cpu: 500m, memory: 256Mi}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
  ephemeralContainers:
    - name: debugger
      image: busybox:1.36.1
      stdin: true
      tty: true
      targetContainerName: checkout
`,
  },
  {
    id: 'several-documents',
    label: 'Several documents (Deployment, Service)',
    verdicts: ['skipped', 'denied'],
    yaml: `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - {port: 80, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: nginx
          image: nginx:1.27.3
          ports:
            - {name: http, containerPort: 8080}
`,
  },
];
