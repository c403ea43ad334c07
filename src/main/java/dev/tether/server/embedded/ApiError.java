package dev.tether.server.embedded;

/** An OpenAI-style error: an HTTP status and {"error": {"message", "type", "code"}}. */
final class ApiError extends RuntimeException {
    final int status;
    final String type;
    final String code;

    ApiError(int status, String type, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.code = code;
    }

    static ApiError badRequest(String message) {
        return new ApiError(400, "invalid_request_error", null, message);
    }

    static ApiError notFound(String message) {
        return new ApiError(404, "invalid_request_error", "model_not_found", message);
    }
}
