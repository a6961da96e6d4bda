import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyErrorCode, ErrorCodes } from "../src/error_codes.ts";

test("classifyErrorCode() calls per-record throttling a throttle", () => {
  assert.equal(classifyErrorCode(ErrorCodes.throughputExceeded), "throttle");
});

test("classifyErrorCode() fails at once what retrying cannot fix", () => {
  for (
    const code of [
      "ResourceNotFoundException",
      "AccessDeniedException",
      "KMSDisabledException",
      "UnrecognizedClientException",
      ErrorCodes.recordCountMismatch,
      ErrorCodes.clientError,
      ErrorCodes.credentialsError,
    ]
  ) {
    assert.equal(classifyErrorCode(code), "permanent", code);
  }
});

test("classifyErrorCode() retries everything else, an unknown code included", () => {
  for (
    const code of [
      "InternalFailure",
      "ServiceUnavailable",
      "LimitExceededException",
      "KMSThrottlingException",
      ErrorCodes.networkError,
      ErrorCodes.requestTimeout,
      "SomethingNew",
    ]
  ) {
    assert.equal(classifyErrorCode(code), "transient", code);
  }
});
