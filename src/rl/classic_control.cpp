// Gymnasium's classic-control dynamics, written from the published equations (Gymnasium
// classic_control: cartpole.py, acrobot.py, mountain_car.py, pendulum.py). State in doubles as
// Gymnasium keeps it (numpy float64), observations rounded to float32.
#include "soma/rl/classic_control.h"

#include <cmath>
#include <numbers>

namespace soma::rl {

namespace {
constexpr double kPi = std::numbers::pi;
constexpr float kF32Max = 3.4028234663852886e38f;

double uniform(Generator& g, double lo, double hi) { return lo + (hi - lo) * g.next_double(); }
}  // namespace

// ---- CartPole-v1 ---------------------------------------------------------------------------
// Barto, Sutton & Anderson (1983) with Florian's (2007) correction as in Gymnasium:
//   temp   = (F + m_p l thdot^2 sin th) / M
//   thacc  = (g sin th - cos th temp) / (l (4/3 - m_p cos^2 th / M))
//   xacc   = temp - m_p l thacc cos th / M
// explicit Euler: x += tau x_dot; x_dot += tau xacc; th += tau thdot; thdot += tau thacc.
namespace cartpole {
constexpr double gravity = 9.8, masscart = 1.0, masspole = 0.1, total_mass = masspole + masscart;
constexpr double length = 0.5, polemass_length = masspole * length, force_mag = 10.0, tau = 0.02;
constexpr double theta_threshold = 12 * 2 * kPi / 360, x_threshold = 2.4;
}  // namespace cartpole

CartPole::CartPole()
    : Env(Space::box(
              {4}, {-cartpole::x_threshold * 2, -kF32Max, -cartpole::theta_threshold * 2, -kF32Max},
              {cartpole::x_threshold * 2, kF32Max, cartpole::theta_threshold * 2, kF32Max}),
          Space::discrete(2), 500) {}

void CartPole::reset_state() {
    x_ = uniform(gen_, -0.05, 0.05);
    x_dot_ = uniform(gen_, -0.05, 0.05);
    theta_ = uniform(gen_, -0.05, 0.05);
    theta_dot_ = uniform(gen_, -0.05, 0.05);
}

void CartPole::assign_state(const std::vector<double>& s) {
    x_ = s[0];
    x_dot_ = s[1];
    theta_ = s[2];
    theta_dot_ = s[3];
}

double CartPole::advance(const double* action, bool& terminated) {
    using namespace cartpole;
    double force = action[0] == 1 ? force_mag : -force_mag;
    double c = std::cos(theta_), s = std::sin(theta_);
    // operation order as in Gymnasium's Python so that long open-loop runs agree bit for bit
    double temp = (force + polemass_length * (theta_dot_ * theta_dot_) * s) / total_mass;
    double thetaacc =
        (gravity * s - c * temp) / (length * (4.0 / 3.0 - masspole * (c * c) / total_mass));
    double xacc = temp - polemass_length * thetaacc * c / total_mass;
    x_ = x_ + tau * x_dot_;
    x_dot_ = x_dot_ + tau * xacc;
    theta_ = theta_ + tau * theta_dot_;
    theta_dot_ = theta_dot_ + tau * thetaacc;
    terminated = x_ < -x_threshold || x_ > x_threshold || theta_ < -theta_threshold ||
                 theta_ > theta_threshold;
    return 1.0;  // also on the step that terminates (Gymnasium's default reward)
}

void CartPole::observe(float* obs) const {
    obs[0] = static_cast<float>(x_);
    obs[1] = static_cast<float>(x_dot_);
    obs[2] = static_cast<float>(theta_);
    obs[3] = static_cast<float>(theta_dot_);
}

// ---- Acrobot-v1 ----------------------------------------------------------------------------
// Sutton & Barto's "book" dynamics (the RLPy/Java form): with a = torque,
//   d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos t2) + I1 + I2
//   d2 = m2 (lc2^2 + l1 lc2 cos t2) + I2
//   phi2 = m2 lc2 g cos(t1 + t2 - pi/2)
//   phi1 = -m2 l1 lc2 dt2^2 sin t2 - 2 m2 l1 lc2 dt2 dt1 sin t2 + (m1 lc1 + m2 l1) g cos(t1 - pi/2)
//          + phi2
//   ddt2 = (a + d2/d1 phi1 - m2 l1 lc2 dt1^2 sin t2 - phi2) / (m2 lc2^2 + I2 - d2^2/d1)
//   ddt1 = -(d2 ddt2 + phi1) / d1
// one classical RK4 step over dt = 0.2, then angles wrapped to [-pi, pi] and velocities clipped
// to +-4 pi and +-9 pi.
namespace acrobot {
constexpr double dt = 0.2, l1 = 1.0, m1 = 1.0, m2 = 1.0, lc1 = 0.5, lc2 = 0.5, moi = 1.0;
constexpr double g = 9.8, max_vel_1 = 4 * kPi, max_vel_2 = 9 * kPi;

void dsdt(const double* s, double a, double* out) {
    double t1 = s[0], t2 = s[1], dt1 = s[2], dt2 = s[3];
    double i1 = moi, i2 = moi;
    double d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * std::cos(t2)) + i1 + i2;
    double d2 = m2 * (lc2 * lc2 + l1 * lc2 * std::cos(t2)) + i2;
    double phi2 = m2 * lc2 * g * std::cos(t1 + t2 - kPi / 2.0);
    double phi1 = -m2 * l1 * lc2 * dt2 * dt2 * std::sin(t2) -
                  2 * m2 * l1 * lc2 * dt2 * dt1 * std::sin(t2) +
                  (m1 * lc1 + m2 * l1) * g * std::cos(t1 - kPi / 2) + phi2;
    double ddt2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dt1 * dt1 * std::sin(t2) - phi2) /
                  (m2 * lc2 * lc2 + i2 - d2 * d2 / d1);
    double ddt1 = -(d2 * ddt2 + phi1) / d1;
    out[0] = dt1;
    out[1] = dt2;
    out[2] = ddt1;
    out[3] = ddt2;
}

double wrap(double x, double lo, double hi) {
    double diff = hi - lo;
    while (x > hi) x -= diff;
    while (x < lo) x += diff;
    return x;
}
}  // namespace acrobot

Acrobot::Acrobot()
    : Env(Space::box({6}, {-1, -1, -1, -1, -acrobot::max_vel_1, -acrobot::max_vel_2},
                     {1, 1, 1, 1, acrobot::max_vel_1, acrobot::max_vel_2}),
          Space::discrete(3), 500) {}

void Acrobot::reset_state() {
    for (double& v : s_) v = uniform(gen_, -0.1, 0.1);
}

void Acrobot::assign_state(const std::vector<double>& s) {
    for (int i = 0; i < 4; ++i) s_[i] = s[static_cast<size_t>(i)];
}

double Acrobot::advance(const double* action, bool& terminated) {
    using namespace acrobot;
    double torque = action[0] - 1.0;  // {0, 1, 2} -> {-1, 0, +1}
    double k1[4], k2[4], k3[4], k4[4], y[4];
    const double h = dt, h2 = dt / 2;
    dsdt(s_, torque, k1);
    for (int i = 0; i < 4; ++i) y[i] = s_[i] + h2 * k1[i];
    dsdt(y, torque, k2);
    for (int i = 0; i < 4; ++i) y[i] = s_[i] + h2 * k2[i];
    dsdt(y, torque, k3);
    for (int i = 0; i < 4; ++i) y[i] = s_[i] + h * k3[i];
    dsdt(y, torque, k4);
    for (int i = 0; i < 4; ++i) s_[i] = s_[i] + h / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    s_[0] = wrap(s_[0], -kPi, kPi);
    s_[1] = wrap(s_[1], -kPi, kPi);
    s_[2] = std::min(std::max(s_[2], -max_vel_1), max_vel_1);
    s_[3] = std::min(std::max(s_[3], -max_vel_2), max_vel_2);
    terminated = -std::cos(s_[0]) - std::cos(s_[1] + s_[0]) > 1.0;
    return terminated ? 0.0 : -1.0;
}

void Acrobot::observe(float* obs) const {
    obs[0] = static_cast<float>(std::cos(s_[0]));
    obs[1] = static_cast<float>(std::sin(s_[0]));
    obs[2] = static_cast<float>(std::cos(s_[1]));
    obs[3] = static_cast<float>(std::sin(s_[1]));
    obs[4] = static_cast<float>(s_[2]);
    obs[5] = static_cast<float>(s_[3]);
}

// ---- MountainCar-v0 ------------------------------------------------------------------------
// v += (a - 1) force - cos(3 p) gravity, clipped to +-0.07; p += v, clipped to [-1.2, 0.6];
// at the left wall a negative velocity is zeroed. Ends when p >= 0.5 (and v >= 0).
namespace mountain_car {
constexpr double min_position = -1.2, max_position = 0.6, max_speed = 0.07, goal_position = 0.5;
constexpr double goal_velocity = 0, force = 0.001, gravity = 0.0025;
}  // namespace mountain_car

MountainCar::MountainCar()
    : Env(Space::box({2}, {mountain_car::min_position, -mountain_car::max_speed},
                     {mountain_car::max_position, mountain_car::max_speed}),
          Space::discrete(3), 200) {}

void MountainCar::reset_state() {
    position_ = uniform(gen_, -0.6, -0.4);
    velocity_ = 0;
}

void MountainCar::assign_state(const std::vector<double>& s) {
    position_ = s[0];
    velocity_ = s[1];
}

double MountainCar::advance(const double* action, bool& terminated) {
    using namespace mountain_car;
    velocity_ += (action[0] - 1) * force + std::cos(3 * position_) * (-gravity);
    velocity_ = std::min(std::max(velocity_, -max_speed), max_speed);
    position_ += velocity_;
    position_ = std::min(std::max(position_, min_position), max_position);
    if (position_ == min_position && velocity_ < 0) velocity_ = 0;
    terminated = position_ >= goal_position && velocity_ >= goal_velocity;
    return -1.0;
}

void MountainCar::observe(float* obs) const {
    obs[0] = static_cast<float>(position_);
    obs[1] = static_cast<float>(velocity_);
}

// ---- Pendulum-v1 ---------------------------------------------------------------------------
// u = clip(u, -2, 2); cost = norm(th)^2 + 0.1 thdot^2 + 0.001 u^2, norm(x) = ((x + pi) mod 2pi)
// - pi; thdot += (3 g / (2 l) sin th + 3 / (m l^2) u) dt, clipped to +-8; th += thdot dt.
namespace pendulum {
constexpr double max_speed = 8, max_torque = 2.0, dt = 0.05, g = 10.0, m = 1.0, l = 1.0;

double angle_normalize(double x) {
    double y = std::fmod(x + kPi, 2 * kPi);  // Python's % takes the divisor's sign
    if (y < 0) y += 2 * kPi;
    return y - kPi;
}
}  // namespace pendulum

Pendulum::Pendulum()
    : Env(Space::box({3}, {-1, -1, -pendulum::max_speed}, {1, 1, pendulum::max_speed}),
          Space::box({1}, {-pendulum::max_torque}, {pendulum::max_torque}), 200) {}

void Pendulum::reset_state() {
    theta_ = uniform(gen_, -kPi, kPi);
    theta_dot_ = uniform(gen_, -1, 1);
}

void Pendulum::assign_state(const std::vector<double>& s) {
    theta_ = s[0];
    theta_dot_ = s[1];
}

double Pendulum::advance(const double* action, bool& terminated) {
    using namespace pendulum;
    // Gymnasium clips the float32 action array, so the torque is a float32 value.
    double u = static_cast<float>(std::min(std::max(action[0], -max_torque), max_torque));
    double th = angle_normalize(theta_);
    double costs = th * th + 0.1 * theta_dot_ * theta_dot_ + 0.001 * u * u;
    double new_thdot =
        theta_dot_ + (3 * g / (2 * l) * std::sin(theta_) + 3.0 / (m * l * l) * u) * dt;
    new_thdot = std::min(std::max(new_thdot, -max_speed), max_speed);
    theta_ = theta_ + new_thdot * dt;
    theta_dot_ = new_thdot;
    terminated = false;
    return -costs;
}

void Pendulum::observe(float* obs) const {
    obs[0] = static_cast<float>(std::cos(theta_));
    obs[1] = static_cast<float>(std::sin(theta_));
    obs[2] = static_cast<float>(theta_dot_);
}

}  // namespace soma::rl
