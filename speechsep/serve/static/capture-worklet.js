// Audio worklet: hands every 128-sample block of its (mono) input to the page's main thread.
class CaptureProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0 && input[0].length > 0) {
      // copy: the engine reuses the block's memory after process() returns
      this.port.postMessage(input[0].slice(0));
    }
    return true;
  }
}
registerProcessor("speechsep-capture", CaptureProcessor);
