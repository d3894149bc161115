// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IERC20 {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title SubscriptionPass
/// @notice Reference payment contract: a payer redeems an EIP-712 quote signed by the billing
/// signer, the funds go straight to the treasury and a non-transferable pass is minted.
contract SubscriptionPass {
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant QUOTE_TYPEHASH =
        keccak256("Quote(bytes32 orderId,address payer,address token,uint256 amount,uint256 deadline)");
    bytes32 private constant NAME_HASH = keccak256("SubscriptionPass");
    bytes32 private constant VERSION_HASH = keccak256("1");
    // secp256k1n / 2: signatures with a higher s are malleable twins of a valid one.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    address public immutable quoteSigner;
    address public immutable treasury;
    address public immutable operator;

    mapping(bytes32 => bool) public usedOrders;
    mapping(uint256 => address) private owners;
    mapping(uint256 => bytes32) public orderOf;
    uint256 public lastPassId;

    event Minted(bytes32 indexed orderId, address indexed payer, address token, uint256 amount, uint256 passId);
    event Burned(uint256 indexed passId, bytes32 indexed orderId, address indexed holder);

    error ZeroAddress();
    error QuoteExpired();
    error OrderUsed();
    error BadSignature();
    error Underpaid();
    error UnexpectedValue();
    error TransferFailed();
    error PassNotFound();
    error NotHolder();

    constructor(address quoteSigner_, address treasury_, address operator_) {
        if (quoteSigner_ == address(0) || treasury_ == address(0) || operator_ == address(0)) revert ZeroAddress();
        quoteSigner = quoteSigner_;
        treasury = treasury_;
        operator = operator_;
    }

    /// @notice Pays for `orderId` with native coin (`token == address(0)`) or an ERC-20 and mints a pass.
    function mint(bytes32 orderId, address token, uint256 amount, uint256 deadline, bytes calldata signature)
        external
        payable
        returns (uint256 passId)
    {
        if (block.timestamp > deadline) revert QuoteExpired();
        if (usedOrders[orderId]) revert OrderUsed();
        bytes32 structHash = keccak256(abi.encode(QUOTE_TYPEHASH, orderId, msg.sender, token, amount, deadline));
        if (recover(keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash)), signature) != quoteSigner) {
            revert BadSignature();
        }

        // Effects before interactions: the treasury or token cannot re-enter with the same order.
        usedOrders[orderId] = true;
        passId = ++lastPassId;
        owners[passId] = msg.sender;
        orderOf[passId] = orderId;

        uint256 paid;
        if (token == address(0)) {
            if (msg.value < amount) revert Underpaid();
            paid = msg.value; // an overpayment stays visible in the event
            (bool ok,) = treasury.call{value: msg.value}("");
            if (!ok) revert TransferFailed();
        } else {
            if (msg.value != 0) revert UnexpectedValue();
            paid = amount;
            safeTransferFrom(token, msg.sender, treasury, amount);
        }
        emit Minted(orderId, msg.sender, token, paid, passId);
    }

    /// @notice Ends a pass; the holder cancels, or the operator revokes.
    function burn(uint256 passId) external {
        address holder = owners[passId];
        if (holder == address(0)) revert PassNotFound();
        if (msg.sender != holder && msg.sender != operator) revert NotHolder();
        bytes32 orderId = orderOf[passId];
        delete owners[passId];
        delete orderOf[passId];
        emit Burned(passId, orderId, holder);
    }

    /// @notice Holder of a live pass, or address(0) when it never existed or was burned.
    function ownerOf(uint256 passId) external view returns (address) {
        return owners[passId];
    }

    /// @notice Computed per call so the domain stays correct if the chain id ever changes (fork).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER || (v != 27 && v != 28)) return address(0);
        // ecrecover yields address(0) for invalid input; quoteSigner is never zero, so that fails too.
        return ecrecover(digest, v, r, s);
    }

    // Accepts tokens that return nothing (USDT style); a call to an address without code must not pass.
    function safeTransferFrom(address token, address from, address to, uint256 amount) private {
        (bool ok, bytes memory data) = token.call(abi.encodeCall(IERC20.transferFrom, (from, to, amount)));
        if (!ok) revert TransferFailed();
        if (data.length == 0) {
            if (token.code.length == 0) revert TransferFailed();
        } else if (data.length != 32 || !abi.decode(data, (bool))) {
            revert TransferFailed();
        }
    }
}
