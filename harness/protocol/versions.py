"""Server-version thresholds the codec needs, named as the official client names them.

Only versions that change a layout the harness encodes or decodes are listed;
the values come from ibapi's server_versions.py (10.50).
"""

MIN_CLIENT_VERSION_V100 = 100  # first version with length-prefixed framing
OPTIONAL_CAPABILITIES = 72  # startApi carries optCapab
COMPLETED_ORDERS = 150
ENCODE_MSG_ASCII7 = 153
REPLACE_FA_END = 157  # ibapi 9.81's maximum and ib_async's minimum
FRACTIONAL_SIZE_SUPPORT = 163
ADVANCED_ORDER_REJECT = 166  # error message gains advancedOrderRejectJson
PENDING_PRICE_REVISION = 178  # execDetails gains pendingPriceRevision
ERROR_TIME = 194  # error message drops its version field, gains errorTime
CURRENT_TIME_IN_MILLIS = 197  # reqCurrentTimeInMillis / currentTimeInMillis
SUBMITTER = 198  # execDetails gains submitter
PARAMETRIZED_DAYS_OF_EXECUTIONS = 200  # reqExecutions gains lastNDays/specificDates
PROTOBUF = 201  # binary message ids; the text codec stops here

TEXT_PROTOCOL_MAX = PROTOBUF - 1
# The newest server version the codec speaks (ibapi-stable 10.50: UNIFIED_VERSION_COND_ORDER_WITH_OVERNIGHT_PARAM).
PROTOCOL_MAX = 226
TEXT_PROTOCOL_MIN = MIN_CLIENT_VERSION_V100
DEFAULT_MOCK_MAX = 178
