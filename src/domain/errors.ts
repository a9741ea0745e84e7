// Typed errors that carry their HTTP status, so the API maps every failure in one place
// and the domain never needs to know about HTTP itself beyond a number.
export class ConveyorError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

export class BadRequestError extends ConveyorError {
  constructor(message: string) {
    super(400, message);
  }
}

export class NotFoundError extends ConveyorError {
  constructor(message: string) {
    super(404, message);
  }
}

export class ConflictError extends ConveyorError {
  constructor(message: string) {
    super(409, message);
  }
}

export class PayloadTooLargeError extends ConveyorError {
  constructor(message: string) {
    super(413, message);
  }
}

// A dependency the request needs (the Kubernetes API server) is down or not ready: the
// request may well succeed later, so clients get 503 with Retry-After, not a 500.
export class ServiceUnavailableError extends ConveyorError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 5) {
    super(503, message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
