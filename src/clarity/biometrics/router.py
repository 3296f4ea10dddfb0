"""Biometric ingestion endpoint (thin): a JSON or NDJSON batch of wearable samples."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status

from clarity.auth.dependencies import RuntimeDep, SessionDep
from clarity.auth.permissions import Permission
from clarity.biometrics import service
from clarity.biometrics.schemas import BatchIn, Receipt
from clarity.patients.access import PatientContext, patient_scope

router = APIRouter(prefix="/patients/{patient_id}/biometrics", tags=["biometrics"])

Uploader = Annotated[PatientContext, patient_scope(Permission.biometrics_write)]

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BatchIn.model_json_schema()},
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": 'First line {"client_batch_id": "..."}, then one sample '
                    "object per line.",
                }
            },
        },
    }
}


@router.post(
    "",
    response_model=Receipt,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_BODY_DOC,
    responses={200: {"model": Receipt, "description": "A resend: the original receipt."}},
)
async def ingest_biometrics(
    request: Request, response: Response, ctx: Uploader, runtime: RuntimeDep, session: SessionDep
) -> Receipt:
    """Upload up to 100,000 samples. Rows are validated one by one: good rows are kept and
    each rejected row is named with a reason. Resending a ``client_batch_id`` returns the
    original receipt (200) and stores nothing; a sample already stored (same stream, ts and
    source) counts as a duplicate. Requires the patient's consent to wearable data."""
    upload = service.parse_upload(request.headers.get("content-type", ""), await request.body())
    receipt, created = await service.ingest(runtime.outbox, session, ctx, upload)
    if not created:
        response.status_code = status.HTTP_200_OK
    return receipt
