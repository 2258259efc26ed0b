// Microphone capture: posts each render quantum (128 samples, mono) with its capture time.
class CaptureProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage({samples: channel.slice(0), time: currentTime});
    return true;
  }
}
registerProcessor("talkinghead-capture", CaptureProcessor);
