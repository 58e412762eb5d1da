// The policy module runs here, off the page's thread: the page stops a worker that takes
// longer than it allows (as podguard serve stops a policy at its deadline), so no input
// can freeze the tab. Every verdict still comes from `playground()` in the module.

import init, { playground, version } from './pkg/podguard_policy.js';

init().then(
  () => self.postMessage({ ready: true, version: version() }),
  (error) => self.postMessage({ ready: false, error: `the policy module did not load: ${error.message}` }),
);

self.addEventListener('message', ({ data }) => {
  try {
    self.postMessage({ id: data.id, answer: playground(data.workloads, data.settings) });
  } catch (error) {
    // A trap or an allocation failure leaves the module's memory in an unknown state:
    // the page replaces this worker after an error.
    self.postMessage({ id: data.id, error: error.message ?? String(error) });
  }
});
