pub mod jwt_crypto;
