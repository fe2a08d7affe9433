// Placeholder entry point: replaced by the endpoint-picker filter (issue 2).
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import { RootContext, Context, registerRootContext } from "@gcoredev/proxy-wasm-sdk-as/assembly";

class PickerRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Context(context_id, this);
  }
}

registerRootContext((context_id: u32) => {
  return new PickerRoot(context_id);
}, "picker");
