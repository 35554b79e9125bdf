/**
 * A protobuf or JSON payload that could not be decoded. pdata depends on nothing else of routelens, so this is a
 * plain Error: the receivers turn it into a permanent `malformed` PipelineError (INVALID_ARGUMENT / 400).
 */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}
