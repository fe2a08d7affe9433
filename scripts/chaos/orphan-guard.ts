// Preloaded into every process the chaos run starts (node --import): the process ends itself as soon as its
// parent is gone, so a chaos run killed with SIGKILL, or a test cancelled by its timeout, leaves nothing behind.
// The parent's pid is polled: an orphan is re-parented (to init or a subreaper), which changes process.ppid.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, "SIGKILL");
}, 250).unref();
